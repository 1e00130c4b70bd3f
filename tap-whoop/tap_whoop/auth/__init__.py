"""WHOOP OAuth 2.0: the token endpoint, the refresh protocol of a run, and the authorization-code flow."""
