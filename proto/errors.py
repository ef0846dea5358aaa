"""The one error the proto package raises for bad client data."""


class DecodeError(ValueError):
    """The request cannot be decoded or has an invalid shape; retrying it cannot succeed.

    The message is shown to the client in a google.rpc.Status, so it says what is wrong
    and, for JSON, where (e.g. `resourceSpans[0].scopeSpans[1].spans[3].name: expected a
    string`).
    """
