"""MQTT: topics and payloads (``topics``), the state throttle (``throttle``), the outbox and its
sender (``outbox``, ``sender``), the paho client (``client``), Home Assistant discovery (``hass``)
and a recording stand-in for paho (``fake``)."""
