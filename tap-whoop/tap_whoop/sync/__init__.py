"""A run over every enrolled athlete: the order of the work (`scheduler`), the app's daily budget (`budget`)
and the STATE messages it writes (`state_writer`)."""
