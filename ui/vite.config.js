// vite.config.js — build configuration of the Scout web UI.
// Preact's automatic JSX runtime through Vite's built-in transformer (no framework plugin).
// `npm run dev` proxies the API to a running scoutd (SCOUT_API, default http://127.0.0.1:8000).
import { defineConfig } from 'vite';

const api = process.env.SCOUT_API || 'http://127.0.0.1:8000';
const proxied = ['/api', '/admin', '/logs', '/readyz', '/healthz', '/metrics', '/docs', '/openapi.json'];

// Vite 8 transforms with Oxc; this is the equivalent of esbuild's
// { jsx: 'automatic', jsxImportSource: 'preact' }. The dev server's dependency scan needs it too.
const jsx = { runtime: 'automatic', importSource: 'preact' };

export default defineConfig({
  oxc: { jsx: { ...jsx } },
  optimizeDeps: { rolldownOptions: { transform: { jsx: { ...jsx } } } },
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2020', sourcemap: false },
  server: { proxy: Object.fromEntries(proxied.map((p) => [p, { target: api, changeOrigin: false }])) },
});
