"""Languages and time: gettext catalogues, Babel formatting, language detection, time zones.

`catalogues` owns the `.po` files and the translations compiled from them; `formats` writes
instants, durations, numbers and sizes the way a locale writes them; `zones` checks and
resolves IANA zone names (without Babel, for the settings); `detect` names the language of a
text. Nothing here reads the settings or the directory: which language and zone a given
person gets is decided above them, in `gateway.routing.people`.
"""
