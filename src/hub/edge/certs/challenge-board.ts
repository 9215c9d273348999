/**
 * ACME challenges in flight, shared by whoever answers them: the ACME client posts what a
 * challenge wants, the HTTP port answers `/.well-known/acme-challenge/TOKEN` from it (HTTP-01),
 * and the edge port serves the challenge certificate to a client offering only `acme-tls/1`
 * for that name (TLS-ALPN-01). In memory only: a challenge lives for one order.
 */
export interface AlpnChallengeCertificate {
  cert: string;
  key: string;
}

export class ChallengeBoard {
  readonly #http = new Map<string, string>();
  readonly #alpn = new Map<string, AlpnChallengeCertificate>();

  /** HTTP-01: the key authorization to answer for TOKEN. */
  setHttp(token: string, keyAuthorization: string): void {
    this.#http.set(token, keyAuthorization);
  }
  httpAnswer(token: string): string | null {
    return this.#http.get(token) ?? null;
  }
  deleteHttp(token: string): void {
    this.#http.delete(token);
  }

  /** TLS-ALPN-01: the self-signed certificate (with the acmeIdentifier extension) for HOST. */
  setAlpn(host: string, certificate: AlpnChallengeCertificate): void {
    this.#alpn.set(host.toLowerCase(), certificate);
  }
  alpnCertificate(host: string): AlpnChallengeCertificate | null {
    return this.#alpn.get(host.toLowerCase()) ?? null;
  }
  deleteAlpn(host: string): void {
    this.#alpn.delete(host.toLowerCase());
  }
}
