/**
 * The app's frame: sign-in until a key is accepted, then a header with the pages and the
 * page the path names. The key lives in sessionStorage (lib/session.ts) and goes out only
 * as the Authorization header; a 401 anywhere signs the person out with a message.
 */
import { useCallback, useMemo, useState } from "react";
import { createApi } from "./api/client";
import { Link, matchPath, Router, useNav } from "./lib/router";
import type { KeyStore } from "./lib/session";
import { NewRecordingPage } from "./pages/NewRecordingPage";
import { RecordingPage } from "./pages/RecordingPage";
import { RecordingsPage } from "./pages/RecordingsPage";
import { ShadowPage, ShadowSummaryPage } from "./pages/ShadowPages";
import { SignIn } from "./pages/SignIn";

export interface Session {
  key: string;
  api: ReturnType<typeof createApi>;
  /** the key stopped working (revoked, or the server restarted with another token) */
  expired(): void;
}

export function App({ keys }: { keys: KeyStore }) {
  return (
    <Router>
      <Shell keys={keys} />
    </Router>
  );
}

function Shell({ keys }: { keys: KeyStore }) {
  const [key, setKey] = useState<string | null>(() => keys.get());
  const [notice, setNotice] = useState<string | null>(null);
  const signOut = useCallback(
    (why?: string) => {
      keys.clear();
      setKey(null);
      setNotice(why ?? null);
    },
    [keys],
  );
  const session = useMemo<Session | null>(
    () => (key ? { key, api: createApi(key), expired: () => signOut("Your API key is no longer accepted. Sign in again.") } : null),
    [key, signOut],
  );
  return (
    <>
      <a href="#main" className="skip">
        Skip to content
      </a>
      <header className="top">
        <Link to="/" className="brand">
          trackscribe
        </Link>
        {session && (
          <nav aria-label="Main">
            <Link to="/">Recordings</Link>
            <Link to="/new">New recording</Link>
            <Link to="/shadow">Engines</Link>
            <button type="button" className="link" onClick={() => signOut()}>
              Sign out
            </button>
          </nav>
        )}
      </header>
      <main id="main">
        {session ? (
          <Page session={session} />
        ) : (
          <SignIn
            notice={notice}
            onSignedIn={(k) => {
              keys.set(k);
              setNotice(null);
              setKey(k);
            }}
          />
        )}
      </main>
    </>
  );
}

function Page({ session }: { session: Session }) {
  const { path } = useNav();
  let m: Record<string, string> | null;
  if (path === "/" || path === "/recordings") return <RecordingsPage session={session} />;
  if (path === "/new") return <NewRecordingPage session={session} />;
  if (path === "/shadow") return <ShadowSummaryPage session={session} />;
  if ((m = matchPath("/recordings/:id/shadow", path))) return <ShadowPage session={session} id={m.id!} />;
  if ((m = matchPath("/recordings/:id", path))) return <RecordingPage key={m.id} session={session} id={m.id!} />;
  return (
    <section>
      <h1>Not found</h1>
      <p>
        There is no page at this address. <Link to="/">Back to the recordings</Link>
      </p>
    </section>
  );
}
