import type { Session } from "../App";
import { UploadForm } from "../components/UploadForm";
import { useNav } from "../lib/router";
import { xhrUploader } from "../lib/upload";

export function NewRecordingPage({ session }: { session: Session }) {
  const { navigate } = useNav();
  return (
    <section>
      <h1>New recording</h1>
      <p className="muted">One audio file per participant, each recorded on their own microphone. Set when each file starts on the meeting's timeline if they did not all start together.</p>
      <UploadForm upload={xhrUploader(session.key)} onCreated={(c) => navigate(`/recordings/${c.id}`)} />
    </section>
  );
}
