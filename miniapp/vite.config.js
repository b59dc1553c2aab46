import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'

// Served by the backend at /m/ (backend/web.py); `npm run dev` proxies the API to scripts/dev's server.
const backend = process.env.ZHILIAN_BACKEND || 'http://127.0.0.1:8000'

export default defineConfig({
  base: '/m/',
  plugins: [vue()],
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2019', chunkSizeWarningLimit: 800 },
  server: {
    host: true,
    proxy: {
      '/api': backend,
      '/ws': { target: backend.replace(/^http/, 'ws'), ws: true },
    },
  },
})
