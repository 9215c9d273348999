/** The dockfleet web UI: entry point (bundled by src/hub/ui/ui-assets.ts when the hub starts). */
import { render } from 'preact';
import '@xterm/xterm/css/xterm.css';
import './styles.css';
import { App } from './app.tsx';

const root = document.getElementById('app');
if (root) {
  root.textContent = '';
  render(<App />, root);
}
