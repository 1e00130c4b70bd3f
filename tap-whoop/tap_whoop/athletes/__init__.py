"""The athletes of one WHOOP app: the registry over the token store (`registry`), invite links (`invites`)."""
