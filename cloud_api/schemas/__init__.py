"""Pydantic models of every REST body: the single source of the OpenAPI document.

The daemon imports these to speak to the cloud; the cloud never imports the daemon."""
