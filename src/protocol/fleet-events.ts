/** Docker engine events across the fleet, as the hub relays them (`GET /api/v1/events`, its SSE stream) and the UI shows them. */

/** One engine event as the UI shows it. */
export interface FleetEvent {
  seq: number;
  node: string;
  /** Epoch ms (the engine's own time, to the nanosecond it reports, rounded). */
  time: number;
  /** container | image | volume | network | daemon | plugin | … (Docker's `Type`). */
  type: string;
  action: string;
  /** The object's ID (container ID, image name or ID, volume name, network ID). */
  id: string;
  /** A readable name: a container's or network's name, an image's reference, a volume's name. */
  name: string;
  /** A few attributes worth showing (image, exit code, signal). */
  detail: Record<string, string>;
}
