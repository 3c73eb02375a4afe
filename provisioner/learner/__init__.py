"""The learner's side of labup: what a learner did and saw, kept between commands.

- :mod:`state`: the learner's state folder (hints seen, checks solved by labup, progress per lab
  instance), written atomically;
- :mod:`identity`: who the learner is (``--learner``, the inventory's ``learner`` var, the user);
- :mod:`grading`: a check run seen through that state: hint levels, hint costs, solved marks;
- :mod:`progress`: ``labup progress``, every lab of the course at a glance;
- :mod:`solve`: ``labup solve``, the reference solution up to an objective;
- :mod:`watch`, :mod:`triggers` and :mod:`folder_watch`: ``labup check --watch``, re-checking
  when the engine or the lab folder says something changed.
"""
