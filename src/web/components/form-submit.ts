/**
 * The busy flag and inline error that every form in a dialog or card keeps: `run(work)` clears
 * the error, marks the form busy, runs the work and shows a failure as the form's inline error
 * (in the API's words), then clears busy. `setError` is there for the form's own checks.
 */
import { useState } from 'preact/hooks';
import { errorMessage } from '../lib/api.ts';

export interface FormSubmit {
  busy: boolean;
  error: string | null;
  setError: (error: string | null) => void;
  run: (work: () => Promise<void>) => Promise<void>;
}

export function useFormSubmit(): FormSubmit {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const run = async (work: () => Promise<void>): Promise<void> => {
    setBusy(true);
    setError(null);
    try {
      await work();
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, setError, run };
}
