"""The serve process: one lifecycle owner (``lifecycle``) and the collaborators it wires."""
