"""The password rule, one for the API, `hub create-admin` and the screens: at least
`MIN_PASSWORD_CHARS` characters, and not guessable by zxcvbn (run locally, nothing leaves the
process) given what the hub knows of the person: their e-mail and name.

zxcvbn scores 0 to 4 from its estimate of the guesses needed (dictionaries of common passwords,
names and words, keyboard walks, repeats, sequences, dates, l33t substitutions); 3 means about
10^8 guesses or more, which is its own advice for a password that resists an offline attack on
a slow hash such as argon2id.
"""

from __future__ import annotations

import re

from zxcvbn import zxcvbn

from hub.errors import BadRequest

MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 1024
MIN_SCORE = 3
_ESTIMATED_CHARS = 100  # zxcvbn's cost grows with length; past this a password is long enough


class WeakPassword(BadRequest):
    code = "weak_password"
    default_message = "Choose a longer password that is not a common word or pattern."


def personal_words(*values: str | None) -> list[str]:
    """The e-mail and name, whole and in their parts, as zxcvbn's user inputs."""
    words: list[str] = []
    for value in values:
        if not value:
            continue
        words.append(value.lower())
        words += [part for part in re.split(r"[^\w]+", value.lower()) if len(part) >= 3]
    return words


def check_new_password(password: str, *, email: str | None = None, name: str | None = None) -> None:
    """Raise WeakPassword, with a sentence saying why, unless the password follows the rule."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise WeakPassword(f"The password needs at least {MIN_PASSWORD_CHARS} characters.")
    if len(password) > MAX_PASSWORD_CHARS:
        raise WeakPassword(f"The password may have at most {MAX_PASSWORD_CHARS} characters.")
    result = zxcvbn(password[:_ESTIMATED_CHARS], user_inputs=personal_words(email, name))
    if result["score"] < MIN_SCORE:
        feedback = result["feedback"]
        reason = feedback.get("warning")
        advice = " ".join(feedback.get("suggestions") or [])
        advice = advice or "Add more words or characters that do not follow a pattern."
        said = f": {reason.rstrip('.')}." if reason else "."
        raise WeakPassword(f"This password is too easy to guess{said} {advice}")
