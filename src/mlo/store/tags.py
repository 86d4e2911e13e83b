"""Tag names the store itself gives meaning to (light: imported when a notebook loads mlo)."""

REPRODUCES_TAG = "mlo.reproduces"  # on every run of a reproduction: the run it reproduces
