"""Search over contacts and messages that works in Turkish as in English."""
