"""The REST API's answers: one pydantic model per JSON body the hub sends, by feature.

The hub builds its answers from these models and `hub.web.openapi` describes them with the
same models, so the document cannot drift from what is answered.
"""
