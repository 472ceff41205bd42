"""The phone page: a small web server inside ``sitsense run`` (live state over Server-Sent Events,
today's and the week's charts, the current alert and the controls), behind a password.

``auth`` holds the password, sessions, CSRF tokens and the login limiter (pure, no I/O but the
password file); ``views`` turns the service's events and state into what the page shows (pure);
``feed`` is the Output the service feeds (it never blocks the sensor loop); ``server`` is the
aiohttp application, run in its own thread. Needs the ``web`` extra (aiohttp).
"""
