"""Generated gRPC stubs of the chanlayer API. Private: never edit."""
