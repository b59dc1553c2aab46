import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'

// Served by the backend at /console/ (backend/web.py); `npm run dev` proxies the API to scripts/dev's server.
const backend = process.env.ZHILIAN_BACKEND || 'http://127.0.0.1:8000'

export default defineConfig({
  base: '/console/',
  plugins: [vue()],
  build: {
    outDir: 'dist', emptyOutDir: true, target: 'es2020', chunkSizeWarningLimit: 1500,
    rollupOptions: {
      output: {
        // Element Plus and ECharts change less often than our pages: separate, long-cached chunks.
        manualChunks: { 'element-plus': ['element-plus'], echarts: ['echarts'] },
      },
    },
  },
  server: { host: true, proxy: { '/api': backend, '/credentials': backend } },
})
