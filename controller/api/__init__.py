"""The HTTP contract: routes, request and response models, the OpenAPI document."""
