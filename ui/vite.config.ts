import { defineConfig } from 'vite';
import preact from '@preact/preset-vite';

// `npm run dev` serves the app with hot reload and proxies the API to a running kfp-box
// (KFPBOX_SERVER, default http://127.0.0.1:8888). The other way round, kfp-box can proxy
// its UI to this server (ui.Handler with a dev URL) so that both share one origin.
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
