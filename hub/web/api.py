"""The routes the OpenAPI document describes (`hub.web.openapi`), in the order the app matches
them: the probes, every REST endpoint, the widget's and the privacy callbacks."""

from __future__ import annotations

from hub.accounts import invite_routes as invitations
from hub.accounts import profile_routes, session_routes, twofactor_routes, workspace
from hub.accounts import reset_routes as resets
from hub.accounts import routes as accounts
from hub.attributes import routes as attributes
from hub.automation import routes as automation
from hub.canned import routes as canned
from hub.channels import facebook, oauth, signup
from hub.channels import routes as channels
from hub.comments import routes as comments
from hub.contacts import routes as contacts
from hub.conversations import routes as conversations
from hub.conversations import workflow
from hub.hooks import routes as hooks
from hub.media import routes as media
from hub.media import signed as media_links
from hub.notify import routes as notify
from hub.privacy import export
from hub.privacy import routes as privacy
from hub.reports import routes as reports
from hub.routing import routes as routing
from hub.templates import routes as templates
from hub.web import status
from hub.web.operation import ApiRoute
from hub.webchat import routes as webchat
from hub.webchat import visitor_info

routes: list[ApiRoute] = [
    *status.probes,
    *status.routes,
    *accounts.routes,
    *session_routes.routes,
    *profile_routes.routes,
    *invitations.routes,
    *resets.routes,
    *channels.routes,
    *oauth.api_routes,
    *facebook.api_routes,
    *signup.api_routes,
    *routing.routes,
    *workflow.routes,  # before /api/conversations/{conversation_id}
    *conversations.routes,
    *contacts.routes,
    *notify.routes,
    *comments.routes,
    *media.routes,
    *media_links.routes,
    *export.routes,
    *privacy.api_routes,
    *privacy.routes,
    *webchat.routes,
    *visitor_info.routes,
    *canned.routes,
    *reports.routes,
    *hooks.routes,
    *automation.routes,
    *attributes.routes,
    *templates.routes,
    *workspace.routes,
    *twofactor_routes.routes,
]
