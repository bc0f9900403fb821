"""The engine process: the Engine that builds and runs every part, leader election, the events tail."""
