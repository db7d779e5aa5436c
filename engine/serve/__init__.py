"""The resident engine: one process per library that holds the library open and its models loaded, so that a
search from the command line or the window answers at once (`glimpse serve`, also started on demand).

- protocol.py  the messages (JSON lines), their validation, and what makes an engine the right one to ask
- sockets.py   where an engine listens (a Unix socket in a folder only its user can open) and who may connect
- server.py    the engine: a thread per connection, two lanes of library work, idle and clean stops
- client.py    `EngineClient`: asking the engine, starting it when none runs, replacing a dead one
- readers.py   `open_reader`: the engine's client, or the library in this process (`--no-daemon`), behind one
               protocol

Importing this package, and a client's modules, loads nothing heavy: a search that a running engine answers
never imports torch, numpy or SQLAlchemy.
"""
