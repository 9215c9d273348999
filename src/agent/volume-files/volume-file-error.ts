/**
 * What can go wrong with a volume file operation. Messages are written for the person at the
 * other end: they quote the caller's own (volume-relative) path, never a host path.
 */
import { DockfleetError, type ErrorCode } from '../../protocol/errors.ts';

export type VolumeFileErrorKind = 'bad_request' | 'refused' | 'not_found' | 'conflict' | 'length_required' | 'too_large' | 'no_space';

/** Each kind is a code of the project's one error registry (statuses live there). */
const CODE_OF: Readonly<Record<VolumeFileErrorKind, ErrorCode>> = {
  bad_request: 'bad_request',
  refused: 'path_refused',
  not_found: 'not_found',
  conflict: 'conflict',
  length_required: 'length_required',
  too_large: 'payload_too_large',
  no_space: 'insufficient_storage',
};

export class VolumeFileError extends DockfleetError {
  readonly kind: VolumeFileErrorKind;
  constructor(kind: VolumeFileErrorKind, message: string, options?: { cause?: unknown }) {
    super(CODE_OF[kind], message, options);
    this.name = 'VolumeFileError';
    this.kind = kind;
  }
}

/** A path the confinement rules refuse; the message says why. */
export class PathRefused extends VolumeFileError {
  constructor(reason: string, options?: { cause?: unknown }) {
    super('refused', reason, options);
    this.name = 'PathRefused';
  }
}
