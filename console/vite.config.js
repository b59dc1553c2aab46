import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'
import Components from 'unplugin-vue-components/vite'
import { ElementPlusResolver } from 'unplugin-vue-components/resolvers'

// Served by the backend at /console/ (backend/web.py); `npm run dev` proxies the API to scripts/dev's server.
const backend = process.env.ZHILIAN_BACKEND || 'http://127.0.0.1:8000'

// On demand, Element Plus's stylesheets load in the order the components are first used, while its full
// stylesheet is alphabetical. The one place the order matters for us: el-table-column's rules must come
// before el-table's (whose `.el-table .cell` padding wins in the full sheet, so selection checkboxes line up).
function tableStylesInFullSheetOrder(name) {
  if (name !== 'ElTable') return undefined
  return {
    name, from: 'element-plus/es',
    sideEffects: ['element-plus/es/components/table-column/style/css', 'element-plus/es/components/table/style/css'],
  }
}

export default defineConfig({
  base: '/console/',
  plugins: [
    vue(),
    // Element Plus on demand: each <el-*> tag and v-loading is imported with its CSS where it is used, so
    // a page loads only the components it shows (not the whole library). Our own components are imported
    // explicitly (dirs: []); icons are registered in src/icons.js; main.js sets the zh-cn locale.
    Components({
      resolvers: [tableStylesInFullSheetOrder, ElementPlusResolver({ importStyle: 'css' })], dirs: [], dts: false,
    }),
  ],
  build: {
    // The largest chunk is the modular ECharts in CertChart (~540 kB before gzip), loaded only by the chart
    // pages; the warning at 600 kB catches a page importing the whole of `echarts` or `element-plus` again.
    outDir: 'dist', emptyOutDir: true, target: 'es2020', chunkSizeWarningLimit: 600,
  },
  server: { host: true, proxy: { '/api': backend, '/credentials': backend } },
})
