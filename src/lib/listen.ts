/** Starts a server listening on HOST:PORT (0: any free port) and gives back the port it got; a failure to bind rejects. */
import type { AddressInfo, Server } from 'node:net';

export async function listenOn(server: Pick<Server, 'once' | 'listen' | 'address' | 'off'>, host: string, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}
