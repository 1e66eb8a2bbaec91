import { defineConfig } from 'vite';
import preact from '@preact/preset-vite';

// `npm run dev` serves the app with hot reload and proxies the API to a running kfp-box
// (KFPBOX_SERVER, default http://127.0.0.1:8888). The other way round,
// `kfp-box serve --ui-dev-url http://127.0.0.1:5173` proxies its UI paths to this server, so the
// app and the API share kfp-box's origin while Vite reloads edits.
const api = process.env.KFPBOX_SERVER ?? 'http://127.0.0.1:8888';

export default defineConfig({
  plugins: [preact()],
  build: {
    outDir: 'dist',
    emptyOutDir: true, // package.json build recreates dist/.keep, which git tracks
    target: 'es2022',
    sourcemap: false,
    chunkSizeWarningLimit: 600,
  },
  server: {
    host: '127.0.0.1',
    port: 5173,
    strictPort: true,
    proxy: { '/apis': { target: api, changeOrigin: true } },
  },
});
