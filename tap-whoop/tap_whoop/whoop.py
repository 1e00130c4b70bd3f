"""Facts about WHOOP's platform that every part of the tap reads: its URLs and the scopes the tap asks for."""

API_URL = "https://api.prod.whoop.com/developer"
TOKEN_URL = "https://api.prod.whoop.com/oauth/oauth2/token"  # noqa: S105 - a URL, not a secret
AUTH_URL = "https://api.prod.whoop.com/oauth/oauth2/auth"
# Where `tap-whoop auth` catches the redirect by default (register it for the app in WHOOP's dashboard).
REDIRECT_URI = "http://localhost:8080/callback"
# `offline` is what makes WHOOP issue a refresh token; the rest are every read scope the streams need.
SCOPES = "offline read:recovery read:cycles read:workout read:sleep read:profile read:body_measurement"
# Endpoints read outside the streams: whose tokens these are, and withdrawing an athlete's authorization.
PROFILE_PATH = "/v2/user/profile/basic"
REVOKE_PATH = "/v2/user/access"
# The signal types a sleep's stream (`/v2/activity/sleep/{id}/stream`) takes in its `types` parameter, and the
# sample keys each brings (`timestamp` always comes).
SLEEP_SIGNAL_TYPES = {
    "hr": "hr",
    "skin_temp": "skin_temp",
    "board_temp": "board_temp",
    "battery_temp": "battery_temp",
    "sleep_classification": "is_sleeping",
    "charging_status": "is_charging",
}
