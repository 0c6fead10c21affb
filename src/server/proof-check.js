// The proof checker page's module (GET /proof-check.js, for GET /proof-check): it checks a pasted proof in the
// browser with the dependency-free verifier (GET /proof-verifier.js) and says valid or invalid with the reason.
// Nothing is sent anywhere. Without JavaScript the form stays disabled and the page says how to check offline.
import { verifyProofText } from '/proof-verifier.js';

const form = document.getElementById('proof-form');
const fields = document.getElementById('proof-fields');
const proof = document.getElementById('proof');
const root = document.getElementById('root');
const verdict = document.getElementById('verdict');

function show(ok, text) {
  verdict.className = ok ? 'valid' : 'invalid';
  verdict.dataset.ok = String(ok);
  verdict.textContent = text;
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const text = proof.value.trim();
  const trusted = root.value.trim();
  if (text === '') return show(false, 'INVALID: paste a proof first');
  verdict.className = '';
  delete verdict.dataset.ok;
  verdict.textContent = 'checking…';
  const v = await verifyProofText(text, trusted === '' ? {} : { root: trusted });
  if (!v.ok) return show(false, `INVALID: ${v.reason}`);
  const txs = v.transactions.length;
  show(
    true,
    `VALID: property ${v.propertyId}, ${txs} transaction${txs === 1 ? '' : 's'} in ${v.blocks} block${
      v.blocks === 1 ? '' : 's'
    }, leading to root ${v.head.root} at height ${v.head.height}${trusted === '' ? '' : ' (the root you trust)'}`,
  );
});

fields.disabled = false;
document.documentElement.dataset.ready = 'true';
