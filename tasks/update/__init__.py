"""The update phase: apply a migration plan to the repository as one coherent change."""
