"""The live floor: the in-memory model, the push that coalesces stored events, the /live Socket.IO namespace."""
