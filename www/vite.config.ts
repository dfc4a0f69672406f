// Vite configuration of the demo. The wharf package comes from node_modules (the packed tarball
// of ../pkg installed by tools/build-demo.mjs), like in any user's app.
import react from "@vitejs/plugin-react";
import { defineConfig, type Plugin } from "vite";

/** Writes precache.json: the built files the service worker caches so the app opens offline. */
function precacheList(): Plugin {
  return {
    name: "wharf-demo-precache-list",
    apply: "build",
    generateBundle(_options, bundle) {
      const files = Object.keys(bundle).filter((file) => !file.endsWith(".map") && file !== "index.html");
      this.emitFile({ type: "asset", fileName: "precache.json", source: JSON.stringify(files.sort(), null, 1) });
    },
  };
}

// For `npm run dev`: the reference server (wharf-server, default 127.0.0.1:8080) answers the sync
// and debug routes; set WHARF_SERVER to point elsewhere.
const server = process.env.WHARF_SERVER ?? "http://127.0.0.1:8080";

export default defineConfig({
  plugins: [react(), precacheList()],
  // React is a peer dependency of wharf/react: make sure the app and the hooks share one copy.
  resolve: { dedupe: ["react", "react-dom"] },
  // Pre-bundling would move wharf's `new URL("wharf_wasm_bg.wasm", import.meta.url)` away from
  // its .wasm file in dev; the production build handles it either way.
  optimizeDeps: { exclude: ["wharf"] },
  // The service worker is a module worker; [name].js puts it at /sw.js, whose scope covers the app.
  worker: { format: "es", rollupOptions: { output: { entryFileNames: "[name].js" } } },
  build: { target: "es2022", sourcemap: true },
  server: {
    // In dev the worker is served from /src/; this lets it control the whole app anyway.
    headers: { "Service-Worker-Allowed": "/" },
    proxy: {
      "/push": server,
      "/pull": server,
      "/debug": server,
      "/live/ticket": server,
      "/live": { target: server.replace(/^http/, "ws"), ws: true },
    },
  },
});
