/**
 * The web app's build (`npm run build:web` → web/dist, served by `trackscribe serve` at /)
 * and its component tests (`vitest run --config web/vite.config.ts`: *.spec.tsx under
 * web/src, in jsdom). Files are content-hashed under /assets/, so the server can cache
 * them for a year; index.html is served with no-cache.
 */
import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

export default defineConfig({
  root: import.meta.dirname,
  plugins: [react()],
  base: "/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
  },
  server: {
    // `npm run web:dev`: the page on Vite's dev server, the API on trackscribe serve
    proxy: { "/v1": process.env.TRACKSCRIBE_API ?? "http://127.0.0.1:3000" },
  },
  test: {
    environment: "jsdom",
    include: ["src/**/*.spec.ts", "src/**/*.spec.tsx"],
    setupFiles: ["src/test-setup.ts"],
  },
});
