"""A live link to the PBX over AMI: call events for screen-pops, and click-to-call.

- :mod:`~voip24h.pbx.protocol`: AMI framing (actions out, messages in), no I/O;
- :mod:`~voip24h.pbx.target`: the ``ami_url`` (secret masked when shown);
- :mod:`~voip24h.pbx.connection`: one logged-in session, ActionID correlation;
- :mod:`~voip24h.pbx.link`: keeps a session up (Ping, reconnect with backoff);
- :mod:`~voip24h.pbx.live`: AMI events to call.ringing/answered/ended per extension;
- :mod:`~voip24h.pbx.originate`: the Originate for makeDial and its result.
"""
