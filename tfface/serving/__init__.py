"""Clients for a TF Serving deployment of a `tfface export` SavedModel (REST and gRPC), and the
photo -> faces pipeline on top of them (`tfface serve-request`)."""

from tfface.serving.client import GrpcClient, RestClient, ServingError, make_client

__all__ = ["GrpcClient", "RestClient", "ServingError", "make_client"]
