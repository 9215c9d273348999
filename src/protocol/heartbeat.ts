/** Heartbeat timing. The agent sends an HTTP/2 PING every HEARTBEAT_MS and the hub answers it:
 * the agent declares the hub dead when no PING has been acknowledged for DEAD_AFTER_MS; the hub
 * declares the agent dead when no PING (or any other message) has arrived for as long. With a
 * ping every 3 s that is at most ~10 s after the last sign of life (the hub sweeps once a
 * second), inside the 15 s budget, while a 5 s stall passes. Only one side sends pings, which
 * halves the heartbeat work a hub with thousands of agents does. */
export const HEARTBEAT_MS = 3_000;
export const DEAD_AFTER_MS = 9_000;
