"""Use cases shared by the actions, the console and the command line."""
