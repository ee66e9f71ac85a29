"""The models a dub can be rendered with: `GET /v1/models`, and the check of a request's `model`."""
