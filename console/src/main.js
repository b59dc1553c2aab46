import { createApp } from 'vue'
// Element Plus on demand: components and v-loading used in templates are imported (with their CSS) by
// unplugin-vue-components (vite.config.js). ElMessage/ElMessageBox are called from scripts, so their CSS
// is imported here.
import { ElMessage, ElMessageBox, provideGlobalConfig } from 'element-plus'
import zhCn from 'element-plus/es/locale/lang/zh-cn'
import 'element-plus/es/components/message/style/css'
import 'element-plus/es/components/message-box/style/css'
import './styles.css'
import App from './App.vue'
import { registerIcons } from './icons'
import { router } from './router'

const app = createApp(App)
registerIcons(app)
// What app.use(ElementPlus, { locale }) did: zh-cn for every component, message boxes included
// (they render outside App.vue, with the app's context given by their install below).
provideGlobalConfig({ locale: zhCn }, app, true)
app.use(ElMessage).use(ElMessageBox).use(router).mount('#app')
