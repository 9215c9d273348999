/** Heartbeat timing shared by both ends of the channel (HTTP/2 PING frames, both directions).
 * A link silent for DEAD_AFTER_MS is declared dead: with a ping every 3 s that is at most
 * ~12 s after the last sign of life, inside the 15 s budget, while a 5 s stall passes. */
export const HEARTBEAT_MS = 3_000;
export const DEAD_AFTER_MS = 9_000;
