import { defineConfig } from "vite";

// A production bundle in dist/, served as static files by bench/latency.py.
export default defineConfig({
  logLevel: "warn",
  build: { outDir: "dist", emptyOutDir: true },
});
