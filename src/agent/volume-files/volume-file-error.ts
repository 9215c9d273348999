/**
 * What can go wrong with a volume file operation. Messages are written for the person at the
 * other end: they quote the caller's own (volume-relative) path, never a host path.
 */
export type VolumeFileErrorKind =
  | 'bad_request'
  | 'refused'
  | 'not_found'
  | 'conflict'
  | 'length_required'
  | 'too_large'
  | 'no_space';

export const VOLUME_FILE_ERROR_STATUS: Readonly<Record<VolumeFileErrorKind, number>> = {
  bad_request: 400,
  refused: 403,
  not_found: 404,
  conflict: 409,
  length_required: 411,
  too_large: 413,
  no_space: 507,
};

export class VolumeFileError extends Error {
  readonly kind: VolumeFileErrorKind;
  constructor(kind: VolumeFileErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'VolumeFileError';
    this.kind = kind;
  }
  get status(): number {
    return VOLUME_FILE_ERROR_STATUS[this.kind];
  }
}

/** A path the confinement rules refuse; the message says why. */
export class PathRefused extends VolumeFileError {
  constructor(reason: string, options?: { cause?: unknown }) {
    super('refused', reason, options);
    this.name = 'PathRefused';
  }
}
