/**
 * The operations of the routes rest-app.ts serves itself (nodes, enrollment, users, tokens,
 * client certificates): declared here rather than in that shared file, with the very schemas
 * it validates with. The route files under hub/ declare their own beside their handlers.
 */
import { z } from 'zod';
import {
  clientCertIssued,
  clientCertRevoked,
  createClientCertBody,
  createEnrollmentBody,
  createJoinTokenBody,
  createTokenBody,
  createUserBody,
  enrollBody,
  enrolled,
  enrollmentCodeCreated,
  inventoryItems,
  joinTokenCreated,
  keyRotated,
  nodeView,
  pingAnswer,
  tokenCreated,
  userCreated,
} from '../../protocol/api.ts';
import { INVENTORY_SECTIONS } from '../../protocol/inventory.ts';
import { retryRebuildBody } from '../rebuild/rebuild-record.ts';
import { describeRoutes } from './operations.ts';

/** A rebuild as `rebuildView` writes it (rebuild/rebuild-record.ts). */
const rebuildAnswer = z.looseObject({
  id: z.string(),
  node: z.string(),
  state: z.enum(['restoring', 'deploying', 'done', 'failed']),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  custody: z.string(),
  volumes: z.array(z.looseObject({ volume: z.string() })),
  stacks: z.array(z.looseObject({})),
  error: z.string().nullable(),
  waiting: z.string().nullable(),
});
const signingJobs = z.looseObject({ jobs: z.array(z.looseObject({ id: z.string(), node: z.string(), signedBody: z.string() })) });

describeRoutes('nodes', [
  { method: 'post', path: '/api/v1/enroll', summary: 'Enroll an agent with its one-time code or join token', body: enrollBody, responses: { 201: enrolled }, public: true },
  { method: 'get', path: '/api/v1/nodes', summary: 'The nodes the caller may see', responses: { 200: z.array(nodeView) } },
  { method: 'get', path: '/api/v1/nodes/{name}', summary: 'One node', responses: { 200: nodeView } },
  { method: 'get', path: '/api/v1/nodes/{name}/rebuild', summary: "The node's latest rebuild after a replacement host", responses: { 200: rebuildAnswer } },
  { method: 'get', path: '/api/v1/nodes/{name}/rebuild/signing', summary: "The rebuild's jobs awaiting a signature, with the bodies to sign", responses: { 200: signingJobs } },
  { method: 'post', path: '/api/v1/nodes/{name}/rebuild', summary: 'Retry a failed rebuild', body: retryRebuildBody, responses: { 202: rebuildAnswer } },
  ...INVENTORY_SECTIONS.map((section) => ({
    method: 'get' as const,
    path: `/api/v1/nodes/{name}/${section}`,
    summary: `The node's ${section}, as its engine last reported them`,
    responses: { 200: inventoryItems },
  })),
  { method: 'post', path: '/api/v1/enrollments', summary: 'A single-use enrollment code for a node (admin)', body: createEnrollmentBody, responses: { 201: enrollmentCodeCreated } },
  { method: 'post', path: '/api/v1/join-tokens', summary: 'A reusable join token (admin)', body: createJoinTokenBody, responses: { 201: joinTokenCreated } },
  { method: 'post', path: '/api/v1/nodes/{name}/approve', summary: 'Approve a pending node (admin)', responses: { 200: nodeView } },
  { method: 'post', path: '/api/v1/nodes/{name}/revoke', summary: 'Revoke a node (admin)', responses: { 200: nodeView } },
  { method: 'post', path: '/api/v1/nodes/{name}/rotate', summary: "Rotate the node's key (admin)", responses: { 200: keyRotated } },
  { method: 'get', path: '/api/v1/nodes/{name}/ping', summary: "A round trip through the node's agent", responses: { 200: pingAnswer } },
]);

describeRoutes('accounts', [
  { method: 'post', path: '/api/v1/users', summary: 'Create a user with its first API token (admin)', body: createUserBody, responses: { 201: userCreated } },
  { method: 'post', path: '/api/v1/tokens', summary: 'A personal API token for the caller, shown once', body: createTokenBody, responses: { 201: tokenCreated } },
  { method: 'post', path: '/api/v1/client-certs', summary: "Certify the caller's public key for the docker CLI", body: createClientCertBody, responses: { 201: clientCertIssued } },
  { method: 'delete', path: '/api/v1/client-certs/{serial}', summary: 'Revoke a client certificate', responses: { 200: clientCertRevoked } },
]);
