"""Languages and time: gettext catalogues, Babel formatting, and working out a person's language.

`catalogues` owns the `.po` files and the translations compiled from them; `formats` writes
instants, durations, numbers and sizes the way a locale writes them; `detect` names the
language of a text; `people` decides a customer's, an agent's or a viewer's language and time
zone from what the directory and the config say about them.
"""
