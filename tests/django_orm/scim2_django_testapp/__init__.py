"""Models shaped like an app's own: an ``Account`` (no username validator, so the contract
suite's userNames such as ``sale%_2024`` fit) and a ``Team`` with a many-to-many to it."""
