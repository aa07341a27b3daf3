"""The routes the OpenAPI document describes (`hub.web.openapi`), in the order the app matches
them: the probes, every REST endpoint, the widget's and the privacy callbacks."""

from __future__ import annotations

from hub.accounts import routes as accounts
from hub.accounts import workspace
from hub.automation import routes as rulesapi
from hub.canned import routes as cannedapi
from hub.channels import routes as channels
from hub.conversations import routes as conversations
from hub.hooks import routes as hooksapi
from hub.privacy import export
from hub.privacy import routes as privacy
from hub.reports import routes as reportsapi
from hub.routing import routes as routing
from hub.web import status
from hub.web.operation import ApiRoute
from hub.webchat import routes as widgetapi

routes: list[ApiRoute] = [
    *status.probes,
    *status.routes,
    *accounts.routes,
    *channels.routes,
    *routing.routes,
    *conversations.routes,
    *export.routes,
    *privacy.api_routes,
    *privacy.routes,
    *widgetapi.routes,
    *cannedapi.routes,
    *reportsapi.routes,
    *hooksapi.routes,
    *rulesapi.routes,
    *workspace.routes,
]
