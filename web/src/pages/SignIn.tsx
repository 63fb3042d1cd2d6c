/** Paste an API key once; it is checked against the API before it is kept. */
import { useState, type FormEvent } from "react";
import { ApiError, createApi, unwrap } from "../api/client";

export function SignIn({ onSignedIn, notice }: { onSignedIn(key: string): void; notice: string | null }) {
  const [key, setKey] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent): Promise<void> => {
    e.preventDefault();
    const k = key.trim();
    if (!k) return setError("Paste your API key first.");
    setBusy(true);
    setError(null);
    try {
      unwrap(await createApi(k).GET("/v1/recordings", { params: { query: { limit: 1 } } }));
      onSignedIn(k);
    } catch (err) {
      setError(
        err instanceof ApiError && err.status === 401
          ? "This key was not accepted. Check that you pasted the whole key (it starts with tsk_), or ask for a new one: trackscribe keys create --name YOU."
          : `Could not sign in: ${(err as Error).message}`,
      );
    } finally {
      setBusy(false);
    }
  };
  return (
    <section className="signin">
      <h1>Sign in</h1>
      <p>Paste your API key. It is kept in this tab only, until you close it or sign out.</p>
      {notice && <p className="notice" role="status">{notice}</p>}
      <form onSubmit={submit}>
        <label>
          API key
          <input
            type="password"
            name="api-key"
            autoComplete="off"
            spellCheck={false}
            value={key}
            onChange={(e) => setKey(e.target.value)}
            aria-invalid={error ? true : undefined}
            aria-describedby={error ? "signin-error" : undefined}
          />
        </label>
        {error && (
          <p className="field-error" id="signin-error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy}>
          {busy ? "Checking…" : "Sign in"}
        </button>
      </form>
    </section>
  );
}
