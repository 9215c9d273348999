/**
 * Cipher preference for the hub's TLS ports: AES-128-GCM first (TLS 1.3's mandatory suite), the
 * rest in Node's order. Every byte through the gateway or the edge is encrypted more than once
 * between client and container, and 10 AES rounds cost less than 14.
 */
import tls from 'node:tls';

export const AES128_FIRST = ['TLS_AES_128_GCM_SHA256', ...tls.DEFAULT_CIPHERS.split(':').filter((c) => c !== 'TLS_AES_128_GCM_SHA256')].join(':');

/** The TLS options that carry the preference (on a server and on every SNI context it hands out). */
export const SERVER_CIPHER_PREFERENCE = Object.freeze({ ciphers: AES128_FIRST, honorCipherOrder: true });
