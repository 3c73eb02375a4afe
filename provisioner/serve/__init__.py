"""The instructor's live class dashboard (``labup serve``); imported only by that command.

- :mod:`~provisioner.serve.state`: what the dashboard knows of the class (plain data);
- :mod:`~provisioner.serve.rounds`: the one worker that re-checks and resets, through the
  one runner, never two rounds at once;
- :mod:`~provisioner.serve.security`: the token, the CSRF token, the allowed ``Host`` names;
- :mod:`~provisioner.serve.app`: the web app (Starlette): the page, the event stream, the
  actions, the class report;
- :mod:`~provisioner.serve.server`: binds the socket, prints the address, runs uvicorn.
"""
