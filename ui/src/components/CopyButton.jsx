// CopyButton.jsx — copies a text to the clipboard and confirms it visibly ("Copied") for a
// moment; falls back to a hidden textarea where the Clipboard API is unavailable (plain http).
import { useEffect, useRef, useState } from 'preact/hooks';

async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      /* fall through to the old way */
    }
  }
  const area = document.createElement('textarea');
  area.value = text;
  area.setAttribute('readonly', '');
  area.style.position = 'fixed';
  area.style.opacity = '0';
  document.body.appendChild(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand('copy');
  } catch {
    ok = false;
  }
  area.remove();
  return ok;
}

export function CopyButton({ text, label = 'Copy', class: cls = '', testid }) {
  const [status, setStatus] = useState('');
  const timer = useRef(0);
  useEffect(() => () => clearTimeout(timer.current), []);
  const onClick = async () => {
    const ok = await copyText(text);
    setStatus(ok ? 'Copied' : 'Copy failed: select the text and copy it');
    clearTimeout(timer.current);
    timer.current = setTimeout(() => setStatus(''), 2500);
  };
  return (
    <span class="copy">
      <button type="button" class={`btn btn-small ${cls}`} onClick={onClick} data-testid={testid}>
        {label}
      </button>
      <span class={`copy-status ${status ? 'shown' : ''}`} role="status" aria-live="polite">
        {status}
      </span>
    </span>
  );
}
